"""Why a data set could not be loaded, as types the program can act on."""


class DatasetError(RuntimeError):
    """A data set could not be loaded; the message says why. Subclasses
    are mistakes in the request (exit status 2 in the CLI); this class
    itself is a failure while loading (exit status 1)."""


class UnknownDataset(DatasetError):
    """No such tensorflow_datasets name."""


class NotImageClassification(DatasetError):
    """The data set has no ('image', 'label') supervised keys."""


class DatasetNotPrepared(DatasetError):
    """The data set is not on this machine and cannot be downloaded."""
