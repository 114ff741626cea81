"""HTTP layer (Flask only): parse the request, call a service, render the response."""
