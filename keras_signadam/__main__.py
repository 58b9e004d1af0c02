import sys

from keras_signadam.comparison.cli import main

if __name__ == "__main__":
    sys.exit(main())
