"""Training and measuring the nano FLUX models (never imported by the app at run time).

`nano_train` is the command line (``python -m training.nano_train --out DIR``); `nano_flux1` and
`nano_klein` build and train each family, `common` holds the pieces their loops share, `grammar_images`
renders the grammar's pictures and builds prompts with the picture each asks for, `checks` tells whether an
image shows it, and `loading` loads the shipped pipelines and calls them as the app does.
"""
