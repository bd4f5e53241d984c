"""A file posted by a form (multipart/form-data), read within a size limit: refused by its declared
length before anything is read, else counted as it arrives (a chunked body has no length) and refused
once past the limit; Starlette spools the file to a temporary file beyond 1 MB, never whole in memory.
The name the browser sent is only ever shown (made plain text) or kept in the provenance, never a path.
"""

from __future__ import annotations

import shutil
import unicodedata
from pathlib import Path

from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import Message

from monitor.core.safe import safe_name

SLACK = 64 << 10  # the form's other fields and the multipart framing


class TooLarge(Exception):
    """The request body is larger than the limit."""


class Malformed(Exception):
    """The body is not a multipart form Starlette can read."""


async def read_form(request: Request, limit: int) -> FormData:
    """The posted form with at most one file, the body at most `limit` bytes plus SLACK."""
    most = limit + SLACK
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > most:
        raise TooLarge
    seen = 0

    async def receive() -> Message:
        nonlocal seen
        message = await request.receive()
        seen += len(message.get("body", b""))
        if seen > most:
            raise TooLarge
        return message

    try:
        return await Request(request.scope, receive).form(max_files=1, max_fields=20, max_part_size=SLACK)
    except HTTPException as exc:  # Starlette's MultiPartException, as it raises it inside an app
        raise Malformed(str(exc.detail)) from None


def shown_name(upload: UploadFile) -> str:
    """The file's name as sent, its last part only, without control characters, at most 80 characters."""
    raw = (upload.filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    plain = "".join(c for c in unicodedata.normalize("NFC", raw) if c.isprintable())
    return plain.strip()[:80]


def suffix_of(upload: UploadFile) -> str:
    return Path(shown_name(upload)).suffix.lower()


def keep(upload: UploadFile, folder: Path, limit: int) -> Path | None:
    """Copy the upload into `folder` under a name of our own (only its kind-telling stem, made safe);
    None when it is larger than `limit` (blocking: call it in a worker thread)."""
    name = Path(shown_name(upload))
    stem = safe_name(name.stem).lstrip("._")[:60] or "upload"
    path = folder / (stem + name.suffix.lower())
    upload.file.seek(0)
    with path.open("wb") as out:
        shutil.copyfileobj(upload.file, out)
    return path if path.stat().st_size <= limit else None
