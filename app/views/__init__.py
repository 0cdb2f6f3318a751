"""The pages of the app, one script each; app/main.py lists them in st.navigation."""
