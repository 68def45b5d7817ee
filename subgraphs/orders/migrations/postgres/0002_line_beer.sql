-- A line remembers the beer it was ordered as (its id in the beers subgraph, which never reuses ids)
-- and that beer's name when the line was last changed, so a closed order keeps showing what was
-- bought after the beer leaves the catalog or a new beer takes its sku. Lines written before this
-- migration have neither: they show their sku as the name and no beer.
ALTER TABLE order_items ADD COLUMN beer_id BIGINT;
ALTER TABLE order_items ADD COLUMN name TEXT;
