public enum SystemIOPlaceholder {}
