//! The `#[cached]` attribute macro of `ttl-cache`. Use it as `ttl_cache::cached`, whose
//! re-export carries the documentation and examples.

use proc_macro::TokenStream;
use proc_macro_crate::{FoundCrate, crate_name};
use proc_macro2::TokenStream as TokenStream2;
use quote::{format_ident, quote};
use syn::spanned::Spanned;
use syn::{
    FnArg, GenericArgument, ItemFn, LitInt, LitStr, Pat, PathArguments, ReturnType, Type,
    parse_macro_input,
};

/// Caches a function's results in a `ttl_cache::TtlCache` keyed by the typed tuple of its
/// arguments.
///
/// Options:
/// - `ttl = SECONDS`: how long values live (default 60 s, `ttl_cache::CACHED_DEFAULT_TTL`, the
///   default of the original Python `@cached` decorator);
/// - `max_size = N`: the entry bound (default 1000);
/// - `cache_none`: also cache `None`; `cache_err`: also cache `Err` (then `Clone`);
/// - `crate = "path"`: where ttl-cache is, overriding the lookup below.
///
/// A function `NAME_cache()` returning the `&'static TtlCache` is generated next to the
/// function: it is the handle for invalidation (`remove`, `clear`) and statistics. There is no
/// process-wide registry of caches. There is no `key_prefix` option either: the
/// `prefix:func:args` strings of the Python decorator kept functions apart in one shared
/// cache, while here each function has its own cache keyed by its typed arguments.
///
/// The generated code names ttl-cache as the calling crate's `Cargo.toml` does: its
/// dependency on `ttl-cache` (renamed or not), else `<secrets>::cache` when it depends only on
/// the `secrets` facade, else `::ttl_cache`. So `#[secrets::cache::cached]` needs no `crate`.
#[proc_macro_attribute]
pub fn cached(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut options = Options::default();
    let parser = syn::meta::parser(|meta| options.parse(meta));
    parse_macro_input!(attr with parser);
    let function = parse_macro_input!(item as ItemFn);
    expand(&options, function)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

#[derive(Default)]
struct Options {
    /// Path of the ttl-cache crate when the caller's `Cargo.toml` does not tell it
    /// (`crate = "my_facade::cache"`).
    krate: Option<syn::Path>,
    ttl: Option<LitInt>,
    max_size: Option<LitInt>,
    cache_none: bool,
    cache_err: bool,
}

impl Options {
    fn parse(&mut self, meta: syn::meta::ParseNestedMeta<'_>) -> syn::Result<()> {
        if meta.path.is_ident("ttl") {
            self.ttl = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("max_size") {
            self.max_size = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("key_prefix") {
            return Err(meta.error(
                "#[cached] has no key_prefix: each function has its own cache, keyed by the typed \
                 argument tuple (clear it with NAME_cache().clear())",
            ));
        } else if meta.path.is_ident("cache_none") {
            self.cache_none = true;
        } else if meta.path.is_ident("cache_err") {
            self.cache_err = true;
        } else if meta.path.is_ident("crate") {
            let path: LitStr = meta.value()?.parse()?;
            self.krate = Some(path.parse()?);
        } else {
            return Err(meta.error(
                "unknown #[cached] option; expected ttl, max_size, cache_none, cache_err or crate",
            ));
        }
        Ok(())
    }
}

/// Where the caller finds ttl-cache, from its `Cargo.toml`: its own (possibly renamed)
/// dependency on `ttl-cache`, else the `secrets` facade's re-export `secrets::cache`, else
/// `::ttl_cache`. Inside ttl-cache itself (its tests and doctests) `::ttl_cache` also works,
/// through its `extern crate self as ttl_cache`.
fn ttl_cache_path() -> TokenStream2 {
    let ident = |name: &str| proc_macro2::Ident::new(name, proc_macro2::Span::call_site());
    match crate_name("ttl-cache") {
        Ok(FoundCrate::Name(name)) => {
            let name = ident(&name);
            quote!(::#name)
        }
        Ok(FoundCrate::Itself) => quote!(::ttl_cache),
        Err(_) => match crate_name("secrets") {
            Ok(FoundCrate::Name(name)) => {
                let name = ident(&name);
                quote!(::#name::cache)
            }
            Ok(FoundCrate::Itself) => quote!(crate::cache),
            Err(_) => quote!(::ttl_cache),
        },
    }
}

/// What the function returns, as far as caching is concerned.
enum Returns {
    /// `Option<T>`, `None` not cached: the cache holds `T`.
    OptionSkippingNone(Type),
    /// `Result<T, E>`, `Err` not cached: the cache holds `T`.
    ResultSkippingErr(Type),
    /// Anything else (or `cache_none`/`cache_err`): the cache holds the return type.
    Plain(Type),
}

fn first_generic(ty: &Type, name: &str) -> Option<Type> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != name {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    args.args.iter().find_map(|a| match a {
        GenericArgument::Type(t) => Some(t.clone()),
        _ => None,
    })
}

fn expand(options: &Options, function: ItemFn) -> syn::Result<TokenStream2> {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = function;
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new(
            sig.generics.span(),
            "#[cached] does not support generic functions",
        ));
    }
    let return_type: Type = match &sig.output {
        ReturnType::Default => syn::parse_quote!(()),
        ReturnType::Type(_, ty) => (**ty).clone(),
    };
    let returns = if let (false, Some(t)) =
        (options.cache_none, first_generic(&return_type, "Option"))
    {
        Returns::OptionSkippingNone(t)
    } else if let (false, Some(t)) = (options.cache_err, first_generic(&return_type, "Result")) {
        Returns::ResultSkippingErr(t)
    } else {
        Returns::Plain(return_type.clone())
    };

    let mut key_types = Vec::new();
    let mut key_values = Vec::new();
    for input in &sig.inputs {
        let FnArg::Typed(arg) = input else {
            return Err(syn::Error::new(
                input.span(),
                "#[cached] supports free functions only (no `self`)",
            ));
        };
        let Pat::Ident(ident) = &*arg.pat else {
            return Err(syn::Error::new(
                arg.pat.span(),
                "#[cached] needs plain argument names (no patterns)",
            ));
        };
        let name = &ident.ident;
        match &*arg.ty {
            Type::Reference(r) if r.mutability.is_none() => {
                let inner = &r.elem;
                key_types.push(quote!(<#inner as ::std::borrow::ToOwned>::Owned));
                key_values.push(quote!(::std::borrow::ToOwned::to_owned(#name)));
            }
            Type::Reference(r) => {
                return Err(syn::Error::new(
                    r.span(),
                    "#[cached] cannot key on `&mut` arguments",
                ));
            }
            ty => {
                key_types.push(quote!(#ty));
                key_values.push(quote!(::std::clone::Clone::clone(&#name)));
            }
        }
    }

    let krate = options
        .krate
        .as_ref()
        .map_or_else(ttl_cache_path, |p| quote!(#p));
    let fn_name = &sig.ident;
    let accessor = format_ident!("{}_cache", fn_name);
    let value_type = match &returns {
        Returns::OptionSkippingNone(t) | Returns::ResultSkippingErr(t) | Returns::Plain(t) => t,
    };
    let ttl = options.ttl.as_ref().map_or_else(
        || quote!(#krate::CACHED_DEFAULT_TTL),
        |t| quote!(::std::time::Duration::from_secs(#t)),
    );
    let max_size = options
        .max_size
        .as_ref()
        .map_or_else(|| quote!(#krate::DEFAULT_MAX_SIZE), |m| quote!(#m));
    let cache_type = quote!(#krate::TtlCache<(#(#key_types,)*), #value_type>);
    let is_async = sig.asyncness.is_some();
    if is_async && !cfg!(feature = "async") {
        // Otherwise the user would see "no method `get_or_insert_with_async`" and guess why.
        return Err(syn::Error::new(
            sig.asyncness.span(),
            "#[cached] on an `async fn` needs ttl-cache's `async` feature",
        ));
    }
    let body = if is_async {
        quote!(async move #block)
    } else {
        quote!((move || -> #return_type #block)())
    };
    let lookup = match (&returns, is_async) {
        (Returns::Plain(_), false) => quote!(__cache.get_or_insert_with(__key, move || #body)),
        (Returns::Plain(_), true) => quote!(__cache.get_or_insert_with_async(__key, #body).await),
        (Returns::ResultSkippingErr(_), false) => {
            quote!(__cache.try_get_or_insert_with(__key, move || #body))
        }
        (Returns::ResultSkippingErr(_), true) => {
            quote!(__cache.try_get_or_insert_with_async(__key, #body).await)
        }
        (Returns::OptionSkippingNone(_), false) => quote!(
            __cache
                .try_get_or_insert_with(__key, move || #body.ok_or(()))
                .ok()
        ),
        (Returns::OptionSkippingNone(_), true) => quote!(
            __cache
                .try_get_or_insert_with_async(__key, async move { (#body).await.ok_or(()) })
                .await
                .ok()
        ),
    };
    let accessor_doc = format!(
        "The cache of [`{fn_name}`], for invalidation and statistics (generated by `#[cached]`)."
    );
    Ok(quote! {
        #(#attrs)*
        #vis #sig {
            let __key = (#(#key_values,)*);
            let __cache = #accessor();
            #lookup
        }

        #[doc = #accessor_doc]
        #vis fn #accessor() -> &'static #cache_type {
            static CACHE: #krate::__private::LazyLock<#cache_type> =
                #krate::__private::LazyLock::new(|| {
                    #krate::TtlCache::builder()
                        .default_ttl(#ttl)
                        .max_size(#max_size)
                        .build()
                });
            &CACHE
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse::Parser;

    fn options(attr: TokenStream2) -> syn::Result<Options> {
        let mut options = Options::default();
        syn::meta::parser(|meta| options.parse(meta)).parse2(attr)?;
        Ok(options)
    }

    fn expanded(attr: TokenStream2, function: ItemFn) -> String {
        expand(&options(attr).unwrap(), function)
            .unwrap()
            .to_string()
    }

    #[test]
    fn key_prefix_is_rejected_with_the_reason() {
        let error = options(quote!(key_prefix = "pricing")).err().unwrap();
        assert!(error.to_string().contains("has no key_prefix"), "{error}");
        let error = options(quote!(tll = 5)).err().unwrap();
        assert!(
            error.to_string().contains("expected ttl, max_size"),
            "{error}"
        );
    }

    #[test]
    fn without_a_ttl_the_decorator_default_is_used() {
        let code = expanded(
            quote!(),
            syn::parse_quote!(
                fn f(x: u32) -> u32 {
                    x
                }
            ),
        );
        assert!(code.contains("CACHED_DEFAULT_TTL"), "{code}");
        let code = expanded(
            quote!(ttl = 5),
            syn::parse_quote!(
                fn f(x: u32) -> u32 {
                    x
                }
            ),
        );
        assert!(code.contains("from_secs (5)"), "{code}");
        assert!(!code.contains("CACHED_DEFAULT_TTL"), "{code}");
    }

    #[test]
    fn the_crate_option_overrides_the_lookup() {
        let code = expanded(
            quote!(crate = "my_facade::cache"),
            syn::parse_quote!(
                fn f(x: u32) -> u32 {
                    x
                }
            ),
        );
        assert!(code.contains("my_facade :: cache :: TtlCache"), "{code}");
        assert!(!code.contains("ttl_cache"), "{code}");
    }

    #[test]
    fn generic_functions_and_methods_are_rejected() {
        let generic = expand(
            &Options::default(),
            syn::parse_quote!(
                fn f<T>(x: T) -> u32 {
                    1
                }
            ),
        );
        assert!(generic.is_err());
        let method = expand(
            &Options::default(),
            syn::parse_quote!(
                fn f(&self) -> u32 {
                    1
                }
            ),
        );
        assert!(method.is_err());
    }
}
