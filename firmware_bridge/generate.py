"""``python -m firmware_bridge.generate ARTIFACT_DIR``: see ``firmware_bridge._generate``.

Import ``firmware_bridge.generate`` (the function) from the package, not this module.
"""

import sys

from ._generate import main

if __name__ == "__main__":
    sys.exit(main())
