"""The demo catalogue: (sku, name, description, price, units on hand). Some are scarce on purpose."""

PRODUCTS = [
    ("MUG-001", "Kafka Mug", "A 350 ml stoneware mug for long consumer-lag investigations.", "12.50", 120),
    (
        "TEE-002",
        "Event Sourcing T-shirt",
        "Organic cotton; the back lists every state it has ever been in.",
        "24.00",
        60,
    ),
    ("CAP-003", "Partition Cap", "One size fits every key.", "18.00", 40),
    ("BAG-004", "Outbox Tote Bag", "Holds what you committed until the relay picks it up.", "15.00", 80),
    ("STK-005", "Idempotent Sticker Pack", "Apply twice, get one sticker's worth of effect.", "4.00", 500),
    ("NTB-006", "Saga Notebook", "A5, dotted; compensating pages at the back.", "9.50", 90),
    ("PEN-007", "At-least-once Pen", "Writes every line, sometimes twice.", "3.20", 300),
    ("HOD-008", "KRaft Hoodie", "No ZooKeeper was harmed. Scarce.", "49.00", 8),
    ("SOC-009", "Offset Socks", "A pair, committed together.", "7.00", 150),
    ("PST-010", "Topic Poster", "A2 print of the Conveyor event flow.", "14.00", 25),
    ("LMP-011", "Consumer Group Lamp", "Lights up when the lag is zero. Very scarce.", "89.00", 3),
    ("CUP-012", "Dead Letter Cup", "For the coffee you will need when replaying.", "11.00", 45),
    ("KEY-013", "Broker Keychain", "Replication factor one, handle with care.", "5.50", 200),
    ("BTL-014", "Backpressure Bottle", "750 ml; flows only as fast as you can drink.", "19.00", 5),
]
