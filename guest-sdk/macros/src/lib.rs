//! `#[wasmhttpd_guest::plugin]`: turns `impl Handler for T` into a plugin.
//!
//! It records which `do_METHOD` functions the impl defines (so that the
//! others answer 501 and OPTIONS can list them in `Allow`) and generates
//! `main`; on `wasm32-wasip2` it also exports `wasi:http/incoming-handler`. Misuse is a compile error pointing at the mistake, never a panic.

use proc_macro::TokenStream;
use quote::quote;
use syn::{ImplItem, ItemImpl, parse_macro_input, parse_quote};

/// The methods a handler may implement, as `do_METHOD`.
const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

/// Marks `impl Handler for T` as the plugin: records its `do_METHOD`
/// functions and generates `main`. `T` must implement `Default`.
#[proc_macro_attribute]
pub fn plugin(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        let attr = proc_macro2::TokenStream::from(attr);
        return syn::Error::new_spanned(attr, "#[plugin] takes no arguments")
            .to_compile_error()
            .into();
    }
    let mut imp = parse_macro_input!(item as ItemImpl);
    match expand(&mut imp) {
        Ok(tokens) => tokens.into(),
        Err(error) => error.to_compile_error().into(),
    }
}

fn expand(imp: &mut ItemImpl) -> syn::Result<proc_macro2::TokenStream> {
    let Some((_, trait_path, _)) = &imp.trait_ else {
        return Err(syn::Error::new_spanned(
            &imp.self_ty,
            "#[plugin] goes on `impl Handler for YourType`",
        ));
    };
    if trait_path
        .segments
        .last()
        .is_none_or(|s| s.ident != "Handler")
    {
        return Err(syn::Error::new_spanned(
            trait_path,
            "#[plugin] goes on `impl Handler for YourType`",
        ));
    }
    let mut implemented = Vec::new();
    for item in &imp.items {
        let ImplItem::Fn(function) = item else {
            continue;
        };
        let name = function.sig.ident.to_string();
        let Some(method) = name.strip_prefix("do_") else {
            continue;
        };
        if !METHODS.contains(&method) {
            let expected = METHODS
                .iter()
                .map(|m| format!("do_{m}"))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(syn::Error::new_spanned(
                &function.sig.ident,
                format!("`{name}` is not a handler method; expected one of {expected}"),
            ));
        }
        implemented.push(method.to_string());
    }
    if implemented.is_empty() {
        return Err(syn::Error::new_spanned(
            &imp.self_ty,
            "the handler implements no do_METHOD function",
        ));
    }
    imp.items.push(parse_quote! {
        const IMPLEMENTED: &'static [&'static str] = &[#(#implemented),*];
    });
    let self_ty = &imp.self_ty;
    Ok(quote! {
        #imp

        fn main() {
            ::wasmhttpd_guest::run::<#self_ty>();
        }

        // On wasm32-wasip2 the plugin is a wasi:http component too (and
        // still a wasi:cli/run command, through `main`).
        #[cfg(all(target_arch = "wasm32", target_env = "p2"))]
        const _: () = {
            struct WasiHttpExport;
            impl ::wasmhttpd_guest::__wasip2::exports::http::incoming_handler::Guest
                for WasiHttpExport
            {
                fn handle(
                    request: ::wasmhttpd_guest::__wasip2::http::types::IncomingRequest,
                    out: ::wasmhttpd_guest::__wasip2::http::types::ResponseOutparam,
                ) {
                    ::wasmhttpd_guest::wasi_http::handle::<#self_ty>(request, out);
                }
            }
            ::wasmhttpd_guest::__wasip2::http::proxy::export!(WasiHttpExport);
        };
    })
}
