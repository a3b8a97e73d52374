"""The commands of `hirondelle`, grouped by what they do; `cli.py` holds their group."""
