"""The seeded fault suite (issue 7): a writer, an observer, a nemesis and a checker on the real lab.

Run it with ``make faults SEED=N SCHEDULES=K`` (``python -m tests.faults``); ``test_smoke.py`` runs three
short schedules inside ``make test``.  Only ``test_*.py`` files here are collected by pytest.
"""
