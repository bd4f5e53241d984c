"""The light rules, one module each: its exact Python judgement, its words (the reason) and its
set-based (SQL) form side by side. `registry` lists them; adding an indicator kind touches one new
module and one line there."""
