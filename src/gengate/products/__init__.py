"""Products: one package per product (its routes, options, prices, statuses, fetch body,
local renderer and upstream adapters); ``registry`` lists them. See ``base`` for the
contract the engine knows them by."""
