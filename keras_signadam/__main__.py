import sys

from keras_signadam.comparison.cli import main

sys.exit(main())
