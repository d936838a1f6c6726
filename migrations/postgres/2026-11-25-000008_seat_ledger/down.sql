DROP TABLE seat_ledger;
