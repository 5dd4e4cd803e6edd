subset role:auditor#grants user:ann#exercise
