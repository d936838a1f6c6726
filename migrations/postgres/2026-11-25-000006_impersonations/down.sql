DROP TABLE impersonations;
