//! tui-phone. Its place in the workspace is fixed by ARCHITECTURE.md; its contents arrive with
//! issue #7 ("tui-phone").
