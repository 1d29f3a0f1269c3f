"""The lot editor's tabs (``pages/admin/lot_edit.py``): one module per tab, each with its layout
(``tab``) and its callbacks (``register_callbacks``, called by the page)."""
