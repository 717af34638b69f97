"""``python -m tokenward.cli``: the same as the ``tokenward`` console script."""

from tokenward.cli import main

main()
