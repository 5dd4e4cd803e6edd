# a set names an object and a relation, or a type, a relation and a subject
subset role:auditor#grants@user:x in user:ann#exercise
subset role#grants in user:ann#exercise
