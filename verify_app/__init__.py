"""The Gradio app's building blocks: shared services, gradio-free handlers and the UI.

``app.py`` at the repository root is the entry point; ``verify_app.ui.build_app`` builds the
``gr.Blocks``. Nothing here loads a model at import time.
"""
