subset role:auditor#grants of user:ann#exercise
