from tests.reports.conftest import *  # noqa
