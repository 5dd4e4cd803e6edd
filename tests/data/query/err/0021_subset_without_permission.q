subset role:auditor#grants in user:ann
