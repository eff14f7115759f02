"""The pages' Jinja templates. A package only so that the build can map this
directory into audioserver (setup.cfg) and importlib.resources can find it,
from a wheel and from an editable install alike."""
