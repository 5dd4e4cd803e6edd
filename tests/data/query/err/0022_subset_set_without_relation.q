subset role:auditor in user:ann#exercise
