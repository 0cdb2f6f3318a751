"""Custom Streamlit components (inline HTML/JS/CSS, no build step)."""
