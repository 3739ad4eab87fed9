"""``python -m prefix_models generate``: rewrite ``named_classes.py`` from the family tables in ``families.py``."""

import argparse

from .families import write_named_classes


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m prefix_models", description=__doc__)
    parser.add_argument("command", choices=["generate"], help="generate: rewrite prefix_models/named_classes.py")
    parser.parse_args()
    print(f"wrote {write_named_classes()}")


if __name__ == "__main__":
    main()
