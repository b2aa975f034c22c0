"""The Reflex chat UI. It talks to the API over HTTP, like any other client."""
