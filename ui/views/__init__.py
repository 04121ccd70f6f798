"""One Streamlit page per module; each runs as a page script and exposes plain functions for tests."""
