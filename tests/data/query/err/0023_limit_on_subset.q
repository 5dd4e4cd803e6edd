subset role:auditor#grants in user:ann#exercise limit 3
