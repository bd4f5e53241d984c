"""`python -m monitor`: the same CLI as the `monitor` command."""

from monitor.cli.main import main

if __name__ == "__main__":  # not again in a worker process (multiprocessing spawn)
    main()
