"""Jobs (SPEC 13, 14): the asynchronous API's records, the store workers claim from, the
workers and their supervisor."""
