"""The blank and ribbon ledger: stock of card blanks by serial, ribbons and film, the
documents behind every movement, the monthly stock report and the balance check.

Kept free of imports so that ``printsrv.models`` can import :mod:`printsrv.ledger.models`
at its end without a cycle.
"""
