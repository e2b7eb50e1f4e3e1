"""The SPICA operation interface: a Django web application beside the workflow.

Survey status, pending processes, products in progress, the image-by-image
summary with search and CSV export, one page per exposure and per release
product, and grading (seed 3.2.1, 6.2). It reads the SPICA configuration
(:mod:`spica.web.config`), the registry (SQLAlchemy, read only,
:mod:`spica.web.data`) and the results tree; its own tables (users, groups,
grade history) live in a separate database (``web.database``). Who sees what
is decided in one place, :mod:`spica.web.access`. Grades go to the grades CSV
the workflow reads (:mod:`spica.web.grades`).

``python -m spica.web serve [--production] [--port N] [--config FILE ...]``
starts it; ``python -m spica.web COMMAND`` is Django's ``manage.py``.
"""

__all__: list[str] = []
