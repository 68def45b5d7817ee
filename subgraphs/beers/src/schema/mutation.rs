//! Catalog changes, for admins only.

use async_graphql::{Context, InputObject, MaybeUndefined, Object, Result};
use taproom_common::{
    auth,
    money::{Decimal, MAX_PRICE_CENTS},
};

use crate::{
    db::{self, BeerChange, NewBeer},
    error::Error,
    schema::Beer,
    validate, AppState,
};

/// The beers subgraph's root mutation type.
pub struct Mutation;

/// A new beer.
#[derive(InputObject)]
pub struct CreateBeerInput {
    sku: String,
    name: String,
    price: Decimal,
    image: Option<String>,
    /// Up to 2000 characters.
    description: Option<String>,
    /// Alcohol by volume in percent, 0.00 to 100.00.
    abv: Option<Decimal>,
    /// Whether it can be ordered now (true when omitted).
    #[graphql(default = true)]
    available: bool,
}

/// Fields to change; omitted fields stay as they are, a null image removes it.
#[derive(InputObject)]
pub struct UpdateBeerInput {
    name: MaybeUndefined<String>,
    price: MaybeUndefined<Decimal>,
    image: MaybeUndefined<String>,
    /// A null or empty description removes it.
    description: MaybeUndefined<String>,
    /// A null abv removes it.
    abv: MaybeUndefined<Decimal>,
    available: MaybeUndefined<bool>,
}

/// A description to store: `None` for an empty one, after checking the rules.
fn description(value: &str) -> Result<Option<&str>, Error> {
    if value.is_empty() {
        return Ok(None);
    }
    validate::description(value)?;
    Ok(Some(value))
}

fn abv(value: &Decimal) -> Result<i64, Error> {
    Ok(value.to_cents("abv", validate::MAX_ABV_HUNDREDTHS)?)
}

#[Object]
impl Mutation {
    /// Add a beer to the catalog. Admins only. (beers)
    async fn create_beer(&self, ctx: &Context<'_>, input: CreateBeerInput) -> Result<Beer> {
        auth::require_admin(ctx).await?;
        validate::sku(&input.sku)?;
        validate::name(&input.name)?;
        let price_cents = input
            .price
            .to_cents("price", MAX_PRICE_CENTS)
            .map_err(Error::from)?;
        let image = input.image.as_deref().filter(|i| !i.is_empty());
        if let Some(image) = image {
            validate::image(image)?;
        }
        let description = input.description.as_deref().map(description).transpose()?;
        let abv_hundredths = input.abv.as_ref().map(abv).transpose()?;
        let state = ctx.data_unchecked::<AppState>();
        let row = db::insert_beer(
            &state.db,
            &NewBeer {
                sku: &input.sku,
                name: &input.name,
                price_cents,
                image,
                description: description.flatten(),
                abv_hundredths,
                available: input.available,
            },
        )
        .await?;
        tracing::info!(sku = %row.sku, "beer created");
        Ok(Beer(row))
    }

    /// Change a beer; only the given fields change. Admins only. (beers)
    async fn update_beer(
        &self,
        ctx: &Context<'_>,
        sku: String,
        input: UpdateBeerInput,
    ) -> Result<Beer> {
        auth::require_admin(ctx).await?;
        let mut change = BeerChange::default();
        match &input.name {
            MaybeUndefined::Undefined => {}
            MaybeUndefined::Null => {
                return Err(Error::invalid("name", "name cannot be removed").into())
            }
            MaybeUndefined::Value(name) => {
                validate::name(name)?;
                change.name = Some(name);
            }
        }
        match &input.price {
            MaybeUndefined::Undefined => {}
            MaybeUndefined::Null => {
                return Err(Error::invalid("price", "price cannot be removed").into())
            }
            MaybeUndefined::Value(price) => {
                change.price_cents = Some(
                    price
                        .to_cents("price", MAX_PRICE_CENTS)
                        .map_err(Error::from)?,
                );
            }
        }
        match &input.image {
            MaybeUndefined::Undefined => {}
            MaybeUndefined::Null => change.image = Some(None),
            MaybeUndefined::Value(image) if image.is_empty() => change.image = Some(None),
            MaybeUndefined::Value(image) => {
                validate::image(image)?;
                change.image = Some(Some(image));
            }
        }
        match &input.description {
            MaybeUndefined::Undefined => {}
            MaybeUndefined::Null => change.description = Some(None),
            MaybeUndefined::Value(value) => change.description = Some(description(value)?),
        }
        match &input.abv {
            MaybeUndefined::Undefined => {}
            MaybeUndefined::Null => change.abv_hundredths = Some(None),
            MaybeUndefined::Value(value) => change.abv_hundredths = Some(Some(abv(value)?)),
        }
        match input.available {
            MaybeUndefined::Undefined => {}
            MaybeUndefined::Null => {
                return Err(Error::invalid("available", "available cannot be removed").into())
            }
            MaybeUndefined::Value(available) => change.available = Some(available),
        }
        let state = ctx.data_unchecked::<AppState>();
        let row = db::update_beer(&state.db, &sku, &change)
            .await?
            .ok_or(Error::NoSuchSku(sku))?;
        Ok(Beer(row))
    }

    /// Remove a beer from the catalog. Admins only. Orders that hold it keep their lines. (beers)
    async fn delete_beer(&self, ctx: &Context<'_>, sku: String) -> Result<bool> {
        auth::require_admin(ctx).await?;
        let state = ctx.data_unchecked::<AppState>();
        if db::delete_beer(&state.db, &sku).await? {
            tracing::info!(%sku, "beer deleted");
            Ok(true)
        } else {
            Err(Error::NoSuchSku(sku).into())
        }
    }
}
