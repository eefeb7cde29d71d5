//! The `detect` Lambda function. The handler is added with the AWS adapter layer
//! (`shared/aws`); until then this binary only proves the crate wiring.

fn main() {
    eprintln!("tripline-detect: the Lambda handler is not built yet; see ARCHITECTURE.md");
    std::process::exit(2);
}
