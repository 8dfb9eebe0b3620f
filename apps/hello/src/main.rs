//! The smallest useful WAGI guest: a CGI-style header block, a blank line, a body.

fn main() {
    print!("Content-Type: text/plain\n\nHello, Flint!\n");
}
