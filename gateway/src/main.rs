//! `otelpipe-gateway`: a Kong-compatible API gateway.

fn main() {
    println!("otelpipe-gateway {}", env!("CARGO_PKG_VERSION"));
}
