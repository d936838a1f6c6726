DROP TABLE caretaker_assignments;
