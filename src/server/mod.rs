//! `purview serve`: SpiceDB's v1 gRPC API and the AuthZEN 1.0 HTTP API over a [`Purview`].

pub mod proto {
    //! The generated SpiceDB v1 messages and services.
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    pub mod google {
        pub mod rpc {
            tonic::include_proto!("google.rpc");
        }
        pub mod api {
            tonic::include_proto!("google.api");
        }
    }
    pub mod authzed {
        pub mod api {
            pub mod v1 {
                tonic::include_proto!("authzed.api.v1");
            }
        }
    }
}
