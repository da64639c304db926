from tests.reports.conftest import *  # noqa: F403
