pub struct ServeOptions;
pub fn serve() {}
