#!/usr/bin/env python
"""Django's command-line utility for the tokenward example project.

TOKENWARD_ISSUER=http://127.0.0.1:8000 python manage.py runserver 9002
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exampleproject.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
