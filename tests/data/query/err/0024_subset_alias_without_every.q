subset user:ann can exercise role:auditor#grants
