"""Settings: every value a command uses, declared once (``registry``), read from layers
(``resolve``: flag > ``VIDA_*`` environment variable > legacy name > ``.env_local`` >
``.env`` > profile > default) and from profile files (``profile``). Every value keeps
its origin, so ``vida-loader config`` can say where it came from and a bad value is one
line naming the setting, its source and the accepted values.
"""
