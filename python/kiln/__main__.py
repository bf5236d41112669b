"""`python -m kiln ...`: the kiln CLI (kiln/_cli.py)."""
from ._cli import main

main()
