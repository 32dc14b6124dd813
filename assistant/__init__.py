"""ESSA Plans Assistant: grounded, checkable answers about US states' ESSA plans."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy: `import assistant` stays cheap for the CLI's --help and for the parser helpers.
    if name == "Assistant":
        from .api import Assistant

        return Assistant
    raise AttributeError(name)


__all__ = ["Assistant", "__version__"]
