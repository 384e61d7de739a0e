"""The server's front ends: the Gradio app (gradio-free handlers and the UI) and the REST API.

``app.py`` at the repository root is the entry point; ``verify_app.ui.build_app`` builds the
``gr.Blocks``, ``verify_app.rest.build_api`` the REST API, ``verify_app.server.build_server`` both
in one FastAPI application. Nothing here loads a model at import time.
"""
