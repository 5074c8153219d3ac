"""`explorer.configdiff`, a public name (DESIGN.md, "Public names"): which config keys differ among
runs. The rules live in ibstore.configdiff, which `trainer ls` shares; this name stays for the code
outside the lab that imports it from here.

>>> from explorer.configdiff import varying_keys
>>> varying_keys([{"seed": 0, "initial_bias": 0.0}, {"seed": 1, "initial_bias": 0.2}])
['initial_bias']
"""

from ibstore.configdiff import *  # noqa: F401,F403  (the public names, ibstore.configdiff.__all__)
from ibstore.configdiff import __all__  # noqa: F401
