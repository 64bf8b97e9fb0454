"""The limits of an order's fields, in one place: the form, the JSON API and the service check the same ones
(and so does the OrderPlaced schema, schemas/conveyor.shop.order.placed.v1.json, the published language)."""

EMAIL_MAX = 254
NAME_MAX = 200
ADDRESS_MAX = 1000
SKU_MAX = 64
MAX_QUANTITY = 100  # units of one product in one order
MAX_LINES = 50
