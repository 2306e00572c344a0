import sys

from wizard.lab import main

if __name__ == "__main__":  # python -m wizard.lab up|down|status
    sys.exit(main())
